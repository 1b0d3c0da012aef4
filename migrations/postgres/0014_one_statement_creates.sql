-- Issue 18: a create's rows go to Postgres in one statement (a data-modifying WITH), which
-- must write nothing when a row collides (an identifier or a vendor id already taken):
-- its last step calls this, which aborts the statement with SQLSTATE CLW01, and the hub
-- then takes its transactional path, which finds out which row and why.
CREATE FUNCTION customer_list_collided() RETURNS integer
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    RAISE EXCEPTION 'a new customer collided with a stored one' USING ERRCODE = 'CLW01';
END
$$;
