"""Real time: the Socket.IO server, its authentication and rooms, and the Publisher protocol."""
