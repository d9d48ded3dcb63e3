-- exec-vma-count: the number of executable mappings of each dump.
-- cel: vmas.filter(v, v.prot & PROT_EXEC).size()
SELECT dump_id, count(*) AS exec_vmas
FROM read_parquet('{{root}}/view=vmas/*/*.parquet', hive_partitioning = true)
WHERE prot & 4 <> 0
GROUP BY dump_id;
