-- thread-names: every thread of every task (the threads view).
-- cel: tasks.map(t, t.threads.map(tid, [t.pid, tid])).flatten()
SELECT dump_id, pid, tid
FROM read_parquet('{{root}}/view=threads/*/*.parquet', hive_partitioning = true);
