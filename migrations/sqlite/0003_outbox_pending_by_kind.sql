-- Card edits coalesce: before adding an edit, the engine looks for one of the same kind that
-- still waits. Without this index that look-up would scan every item ever delivered.
CREATE INDEX outbox_pending_by_kind ON outbox (kind, id) WHERE state = 'pending';
