-- The attachment an outbox operation created in Kustomer (`{"upload": {attachment, url,
-- fields}, "uploaded": bool}`), kept between the two steps of the upload and the message or
-- note that references it: a retry (after a crash or a failed write) uses it again rather than
-- leave it behind and create another.
ALTER TABLE crm_outbox ADD COLUMN attachment TEXT;
