-- cmdlines: the command line of every task, read from its memory.
-- cel: tasks.map(t, [t.pid, t.cmdline.join(" ")])
SELECT dump_id, pid, array_to_string(cmdline, ' ')
FROM read_parquet('{{root}}/view=tasks/*/*.parquet', hive_partitioning = true);
