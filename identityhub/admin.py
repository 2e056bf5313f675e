"""The hub-wide app registers nothing itself: the console (`console/`) owns the admin site."""
