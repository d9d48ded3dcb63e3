-- exec-vmas: executable mappings of every task.
-- cel: vmas.filter(v, v.prot & PROT_EXEC).map(v, [v.pid, v.start, v.end, has(v.path) ? dyn(v.path) : null])
SELECT dump_id, pid, start, "end", path
FROM read_parquet('{{root}}/view=vmas/*/*.parquet', hive_partitioning = true)
WHERE prot & 4 <> 0
ORDER BY dump_id, pid, start;
