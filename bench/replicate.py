#!/usr/bin/env python3
"""Makes a large VM-record file from a smaller one: `replicate.py COPIES < in.jsonl > out.jsonl`.

Copy 0 is the input as it is. In copy k (k >= 1) every VM gets new ids for itself, its disks (and
their attachments), NICs and permissions, and its name gets the suffix `-rK`; owners, clusters,
storage domains and networks stay the same, so copies land in the same namespaces and groups. A disk
shared by several VMs stays shared within a copy. New ids are UUIDv5 of (k, old id), so the output
is the same on every run. Python standard library only.
"""

import json
import sys
import uuid

NAMESPACE = uuid.UUID("6f1c2f0e-5b7a-4d3e-9a51-2d8e0c1b4a77")


def ids_to_rewrite(record):
    ids = {record["id"]}
    for disk in record.get("disks") or []:
        ids.add(disk.get("attachment_id"))
        ids.add(disk.get("disk_id"))
    for nic in record.get("nics") or []:
        ids.add(nic.get("id"))
    for permission in record.get("permissions") or []:
        ids.add(permission.get("id"))
    ids.discard(None)
    return ids


def main():
    copies = int(sys.argv[1])
    out = sys.stdout
    base = []
    for line in sys.stdin:
        if not line.strip():
            continue
        out.write(line)
        record = json.loads(line)
        name = json.dumps(record["name"], ensure_ascii=False)
        base.append((line, name, sorted(ids_to_rewrite(record))))
    for k in range(1, copies):
        for line, name, ids in base:
            new = line.replace('"name":' + name, '"name":' + name[:-1] + f'-r{k}"', 1)
            for old in ids:
                new = new.replace(f'"{old}"', '"' + str(uuid.uuid5(NAMESPACE, f"{k}:{old}")) + '"')
            out.write(new)


if __name__ == "__main__":
    main()
