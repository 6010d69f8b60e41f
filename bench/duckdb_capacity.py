"""Peer for make bench part B: VMs and provisioned bytes per namespace, the sums
`capacity-calc --by namespace FILE` reports among its columns, with DuckDB's read_json.

Usage: duckdb_capacity.py FILE (owner-group's output). Prints one JSON object a line,
{"namespace", "vms", "provisioned_bytes"}, then {"namespace": "TOTAL", "total": true, ...}.
Written as a DuckDB user would: the two fields the sums need declared (so the reader skips
the rest), the grouping in SQL. Direct LUN disks are left out, as capacity-calc counts them
apart (lun_bytes); it uses every core, as capacity-calc does.
"""

import json
import sys

import duckdb

QUERY = """
SELECT coalesce(target_namespace, '(none)') AS namespace,
       count(*) AS vms,
       sum(coalesce(list_sum(list_transform(
           list_filter(disks, lambda d: d.storage_type IS DISTINCT FROM 'lun'),
           lambda d: d.provisioned_bytes)), 0))::UBIGINT AS provisioned_bytes
FROM read_json($path, format = 'newline_delimited',
               columns = {target_namespace: 'VARCHAR',
                          disks: 'STRUCT(storage_type VARCHAR, provisioned_bytes UBIGINT)[]'})
GROUP BY ALL
ORDER BY namespace
"""


def main() -> None:
    if len(sys.argv) != 2:
        sys.exit("usage: duckdb_capacity.py FILE")
    rows = duckdb.connect().execute(QUERY, {"path": sys.argv[1]}).fetchall()
    out = sys.stdout
    for namespace, vms, provisioned in rows:
        out.write(json.dumps({"namespace": namespace, "vms": vms, "provisioned_bytes": provisioned}) + "\n")
    total = {
        "namespace": "TOTAL",
        "total": True,
        "vms": sum(r[1] for r in rows),
        "provisioned_bytes": sum(r[2] for r in rows),
    }
    out.write(json.dumps(total) + "\n")


if __name__ == "__main__":
    main()
