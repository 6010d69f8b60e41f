#!/usr/bin/env python3
"""VM -> owners with the official oVirt Python SDK, written the way such scripts usually are.

The baseline for `make bench`: list the VMs, list each VM's permissions, follow each permission's
user (or group) link to get its name. Prints one JSON object per VM: {"vm": name, "owners": [...]}.

Environment: OVIRT_URL, OVIRT_USER, OVIRT_PASSWORD; OVIRT_CA (optional, for https).
Optional: LIMIT=N stops after the first N VMs (used by the benchmark to sample).
"""

import json
import os
import sys

import ovirtsdk4 as sdk


def main():
    connection = sdk.Connection(
        url=os.environ["OVIRT_URL"],
        username=os.environ["OVIRT_USER"],
        password=os.environ["OVIRT_PASSWORD"],
        ca_file=os.environ.get("OVIRT_CA"),
    )
    limit = int(os.environ.get("LIMIT", "0"))
    vms_service = connection.system_service().vms_service()

    owners = {}
    vms = vms_service.list()
    if limit:
        vms = vms[:limit]
    for vm in vms:
        names = []
        permissions = vms_service.vm_service(vm.id).permissions_service().list()
        for permission in permissions:
            if permission.user is not None:
                user = connection.follow_link(permission.user)
                names.append(user.principal)
            elif permission.group is not None:
                group = connection.follow_link(permission.group)
                names.append(group.name)
        owners[vm.name] = sorted(set(names))

    connection.close()
    for name, users in owners.items():
        sys.stdout.write(json.dumps({"vm": name, "owners": users}) + "\n")


if __name__ == "__main__":
    main()
