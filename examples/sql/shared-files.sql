-- shared-files: file objects open in more than one task.
-- cel: files.filter(f, f.pids.size() > 1).map(f, [f.id, f.kind, f.pids.size()])
SELECT dump_id, file_id, kind, len(pids) AS tasks
FROM read_parquet('{{root}}/view=files/*/*.parquet', hive_partitioning = true)
WHERE len(pids) > 1;
