-- parent-pages: memory held in a parent (pre-)dump.
-- cel: pagemaps.filter(p, p.flags & PE_PARENT).map(p, [p.pid, p.vaddr, p.nr_pages])
SELECT dump_id, pid, vaddr, nr_pages
FROM read_parquet('{{root}}/view=pagemaps/*/*.parquet', hive_partitioning = true)
WHERE flags & 1 <> 0;
