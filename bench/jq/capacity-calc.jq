# Provisioned bytes per namespace, what `capacity-calc --by namespace FILE` reports among its
# columns, in jq: run as `jq -n -c -f capacity-calc.jq FILE` on owner-group's output.
# Unlike capacity-calc: no PVC sizing, no per-class split, shared disks counted once per VM.
# `|=` updates the accumulator in place; `+=` would copy it for every record (it keeps a reference
# to the whole input), which makes the run quadratic in the number of namespaces.
reduce inputs as $vm ({};
  .[$vm.target_namespace // "(none)"] |= {
    vms: ((.vms // 0) + 1),
    provisioned_bytes: ((.provisioned_bytes // 0) + ([$vm.disks[]?.provisioned_bytes // 0] | add // 0))
  })
| to_entries
| (.[] | {namespace: .key} + .value),
  {namespace: "TOTAL", total: true, vms: (map(.value.vms) | add // 0),
   provisioned_bytes: (map(.value.provisioned_bytes) | add // 0)}
