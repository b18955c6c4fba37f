"""The casetrail domain: case kinds, their events and rules. No I/O here."""
