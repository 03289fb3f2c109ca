-- A rule may count scans per value of one query parameter (`channel`).
ALTER TABLE rules ADD COLUMN count_by TEXT;
