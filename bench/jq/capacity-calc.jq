# Provisioned bytes per namespace, what `capacity-calc --by namespace FILE` reports among its
# columns, in jq: run as `jq -n -c -f capacity-calc.jq FILE` on owner-group's output.
# Unlike capacity-calc: no PVC sizing, no per-class split, shared disks counted once per VM.
# One small [namespace, bytes] pair per VM, then group_by: with jq 1.6, updating an object
# accumulator in `reduce` (`+=`, `|=`, `=`) copies it for every record, quadratic in namespaces.
[inputs | [(.target_namespace // "(none)"), ([.disks[]?.provisioned_bytes // 0] | add // 0)]]
| group_by(.[0])
| map({namespace: .[0][0], vms: length, provisioned_bytes: (map(.[1]) | add)})
| (.[]),
  {namespace: "TOTAL", total: true, vms: (map(.vms) | add // 0),
   provisioned_bytes: (map(.provisioned_bytes) | add // 0)}
