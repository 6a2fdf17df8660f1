"""The chaos matrix: several enrolled hosts on one PostgreSQL board, hurt on purpose."""
