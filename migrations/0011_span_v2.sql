-- Span events version 2 (issue #22): apps' spans sent over OTLP carry their resource attributes
-- (other than service.name, which is `service`), their instrumentation scope, timed events and
-- links. Resource attributes are parallel key/value arrays like attr_keys/attr_values (no Map on
-- 18.16). Events and links are read only with their span (the trace view), never filtered on, so
-- each is one JSON array in a String: `[{"time":µs,"name":…,"attributes":{…}}]` and
-- `[{"trace_id":…,"span_id":…,"attributes":{…}}]`. Rows stored before this migration read empty
-- arrays and '' scope. 18.16 has no ADD COLUMN IF NOT EXISTS; the runner records this file once.

ALTER TABLE spans ADD COLUMN resource_keys Array(String) AFTER attr_values;
ALTER TABLE spans ADD COLUMN resource_values Array(String) AFTER resource_keys;
ALTER TABLE spans ADD COLUMN scope_name String AFTER resource_values;
ALTER TABLE spans ADD COLUMN scope_version String AFTER scope_name;
ALTER TABLE spans ADD COLUMN events_json String DEFAULT '[]' AFTER scope_version;
ALTER TABLE spans ADD COLUMN links_json String DEFAULT '[]' AFTER events_json;
