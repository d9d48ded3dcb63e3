-- wx-vmas: mappings both writable and executable (injected code lives here).
-- cel: vmas.filter(v, (v.prot & (PROT_WRITE | PROT_EXEC)) == (PROT_WRITE | PROT_EXEC)).map(v, [v.pid, v.start])
SELECT dump_id, pid, start
FROM read_parquet('{{root}}/view=vmas/*/*.parquet', hive_partitioning = true)
WHERE prot & 6 = 6;
