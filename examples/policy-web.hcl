# A client policy for the team that deploys job `web`:
#
#   sigil acl policy apply --description "deploy web" web examples/policy-web.hcl
#   sigil acl token create --name web-deployer --policy web
#
# Submitting plans needs `submit-job`; the variables rule lets the token read what the job's
# tasks read. Add `--namespace default --job web` to `policy apply` to attach the same grants to
# the workload identities of job `web` instead.
namespace "default" {
  capabilities = ["submit-job", "read-job"]

  variables {
    path "nomad/jobs/web/*" {
      capabilities = ["read"]
    }
  }
}
