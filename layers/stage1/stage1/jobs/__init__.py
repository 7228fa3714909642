"""Background jobs in Postgres (`stage1_jobs`): create, claim with a lease, report progress,
complete/fail, cancel/retry, and the sweeper that reclaims expired leases. See docs/imports.md."""
