-- zombies: CRIU stores zombies as DEAD (criu/seize.c).
-- cel: tasks.filter(t, t.state == TASK_DEAD || t.state == TASK_ZOMBIE).map(t, t.pid)
SELECT dump_id, pid
FROM read_parquet('{{root}}/view=tasks/*/*.parquet', hive_partitioning = true)
WHERE state IN ('DEAD', 'ZOMBIE');
