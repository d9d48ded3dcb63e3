-- exec-vma-count: the number of executable mappings of each dump (0 included).
-- cel: vmas.filter(v, v.prot & PROT_EXEC).size()
SELECT d.dump_id, count(v.pid) AS exec_vmas
FROM (SELECT DISTINCT dump_id FROM read_parquet('{{root}}/view=images/*/*.parquet', hive_partitioning = true)) d
LEFT JOIN read_parquet('{{root}}/view=vmas/*/*.parquet', hive_partitioning = true) v
  ON v.dump_id = d.dump_id AND v.prot & 4 <> 0
GROUP BY d.dump_id;
