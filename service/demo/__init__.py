"""`nps demo`: a throwaway database with a realistic company, and the insight commands run on it."""
