-- fd-count: open file descriptors per task.
-- cel: tasks.map(t, [t.pid, t.fds.size()])
SELECT t.dump_id, t.pid, count(f.fd) AS fds
FROM read_parquet('{{root}}/view=tasks/*/*.parquet', hive_partitioning = true) t
LEFT JOIN read_parquet('{{root}}/view=fds/*/*.parquet', hive_partitioning = true) f
  ON f.dump_id = t.dump_id AND f.pid = t.pid
GROUP BY t.dump_id, t.pid;
