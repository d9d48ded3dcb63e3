-- kinds: the image kinds of each dump.
-- cel: images.map(n, images[n].kind).filter(k, k != "")
SELECT dump_id, kind
FROM read_parquet('{{root}}/view=images/*/*.parquet', hive_partitioning = true)
WHERE kind IS NOT NULL;
