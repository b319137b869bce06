"""The sandbox and test rig, apart from the service: the stack, the Asterisk root, processes, scripted sipp
calls with their pcaps, and a broker of one's own. The service never imports it."""
