-- root-tasks: tasks running with effective uid 0.
-- cel: tasks.filter(t, has(t.creds) && t.creds.euid == 0u).map(t, t.pid)
SELECT dump_id, pid
FROM read_parquet('{{root}}/view=tasks/*/*.parquet', hive_partitioning = true)
WHERE euid = 0;
