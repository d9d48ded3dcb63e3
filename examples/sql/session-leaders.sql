-- session-leaders: tasks that lead their session.
-- cel: tasks.filter(t, t.pid == t.sid).map(t, [t.pid, t.comm])
SELECT dump_id, pid, comm
FROM read_parquet('{{root}}/view=tasks/*/*.parquet', hive_partitioning = true)
WHERE pid = sid;
