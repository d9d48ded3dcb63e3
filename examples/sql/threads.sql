-- threads: multi-threaded tasks with their thread count.
-- cel: tasks.filter(t, t.threads.size() > 1).map(t, [t.pid, t.comm, t.threads.size()])
SELECT dump_id, pid, comm, len(threads) AS threads
FROM read_parquet('{{root}}/view=tasks/*/*.parquet', hive_partitioning = true)
WHERE len(threads) > 1;
