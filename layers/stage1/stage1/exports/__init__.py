"""Large reads: inline when small, otherwise an export job that writes CSV/Parquet to the bucket
under `exports/<job_id>/` and puts a presigned download URL in the job's result (docs/questdb.md)."""
