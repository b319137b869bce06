"""Speech capture while the caller waits: AudioSocket, the capture sessions and VAD, the recorded fallback and the
vosk recogniser."""
