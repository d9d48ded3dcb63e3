-- big-vmas: mappings of 1 MiB or more.
-- cel: vmas.filter(v, v.size >= 1048576u).map(v, [v.pid, v.start, v.size])
SELECT dump_id, pid, start, size
FROM read_parquet('{{root}}/view=vmas/*/*.parquet', hive_partitioning = true)
WHERE size >= 1048576;
