alter table stage1_jobs drop column if exists retry_at, drop column if exists outage_since;
