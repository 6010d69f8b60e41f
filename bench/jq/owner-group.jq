# What `owner-group FILE` does to each VM record, in jq: run as `jq -c -f owner-group.jq FILE`.
# Owners: users and groups holding an owner role on the VM itself (inherited permissions never
# count), one entry per principal with all its owner roles; the namespace is the owners' short
# names, sorted, joined with '-', plus "-ns", made an RFC 1123 label; no owners: "unowned".
# Unlike owner-group, no hash suffix is added for collisions or changed names (jq has no SHA-256),
# and the input is read once.

def owner_roles: ["UserVmManager", "UserRole", "PowerUserRole", "UserVmRunTimeManager", "UserInstanceManager"];

# alice@example.com-authz -> alice, example.com/Groups/dba -> dba
def short_principal: split("@")[0] | split("/")[-1];

def rfc1123_label:
  ascii_downcase | gsub("[^a-z0-9]+"; "-") | ltrimstr("-") | rtrimstr("-") | .[0:63] | rtrimstr("-")
  | if . == "" then "x" else . end;

def owner_of($role):
  if .user then
    (.user.user_name // .user.principal) as $principal
    | select($principal != null)
    | {kind: "user", name: ((.user.principal // $principal) | short_principal),
       principal: $principal, domain: .user.domain, roles: [$role]}
  elif .group then
    select(.group.name != null)
    | {kind: "group", name: (.group.name | short_principal), principal: .group.name,
       domain: .group.domain, roles: [$role]}
  else empty end
  | with_entries(select(.value != null));

. as $vm
| [ (.permissions // [])[]
    | select(.inherited_from == null)
    | .role.name as $role
    | select($role != null and any(owner_roles[]; . == $role))
    | owner_of($role) ]
| group_by([(if .kind == "user" then 0 else 1 end), .principal])
| map(.[0] + {roles: (map(.roles[]) | unique)})
| . as $owners
| (if length == 0 then "unowned"
   else (map(.name) | sort | join("-")) + "-ns" | rfc1123_label end) as $namespace
| $vm + {owners: $owners, target_namespace: $namespace}
