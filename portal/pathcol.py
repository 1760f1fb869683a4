"""The column type of materialised paths ("/1/7/31/")."""

from sqlalchemy import String

#: Byte-wise ordering on PostgreSQL too (collation "C"), so a subtree is an index range scan.
PathString = String(255).with_variant(String(255, collation="C"), "postgresql")
