"""The AMI client: the connection (login, actions, events, reconnect), the wire format and its errors."""
