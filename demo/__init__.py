"""`casetrail demo`: a synthetic but realistic Jiangsu, loaded through the application service."""
