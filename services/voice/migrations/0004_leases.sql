-- Leases (issue 14): the dialer that marks a call `dialing` or a text `sending` owns it until
-- `lease_until`, renewed by its heartbeat while it waits for the provider or for the database.
-- Only a row whose lease expired (its dialer died) is judged uncertain by anyone else.
ALTER TABLE calls ADD COLUMN owner text;
ALTER TABLE calls ADD COLUMN lease_until timestamptz;
ALTER TABLE texts ADD COLUMN owner text;
ALTER TABLE texts ADD COLUMN lease_until timestamptz;
