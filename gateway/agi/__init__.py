"""FastAGI: the server Asterisk connects to, one session per call, and the AGI wire format."""
