"""Database access: declarative base and portable column types, engines, sessions and the unit of work."""
