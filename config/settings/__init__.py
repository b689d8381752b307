"""Settings split by purpose: base, local (the embedded default), test, production."""
