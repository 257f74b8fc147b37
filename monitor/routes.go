package monitor

import "net/http"

// routes registers every endpoint. docs/HTTP-API.md describes them.
func (s *Server) routes() {
	m := s.mux
	handle := func(pattern string, need Role, fn func(http.ResponseWriter, *http.Request) error) {
		m.Handle(pattern, s.endpoint(need, fn))
	}
	// Probes carry no credentials.
	handle("GET /healthz", RoleNone, s.handleHealthz)
	handle("GET /readyz", RoleNone, s.handleReadyz)

	// nats-server's monitoring endpoints.
	handle("GET /varz", RoleMonitor, s.handleVarz)
	handle("GET /connz", RoleMonitor, s.handleConnz)
	handle("GET /subsz", RoleMonitor, s.handleSubsz)
	handle("GET /subscriptionsz", RoleMonitor, s.handleSubsz)
	handle("GET /jsz", RoleMonitor, s.handleJsz)

	handle("GET /metrics", RoleMonitor, s.handleMetrics)

	// ledge's API.
	handle("GET /api/server", RoleMonitor, s.handleServer)
	handle("GET /api/health", RoleMonitor, s.handleReadyz)
	handle("GET /api/connections", RoleMonitor, s.handleConnections)
	handle("GET /api/connections/{protocol}/{id}", RoleMonitor, s.handleConnection)
	handle("DELETE /api/connections/{protocol}/{id}", RoleAdmin, s.handleCloseConnection)
	handle("GET /api/subscriptions", RoleMonitor, s.handleSubscriptions)
	handle("GET /api/streams", RoleMonitor, s.handleStreams)
	handle("GET /api/streams/{stream}", RoleMonitor, s.handleStream)
	handle("DELETE /api/streams/{stream}", RoleAdmin, s.handleDeleteStream)
	handle("POST /api/streams/{stream}/purge", RoleAdmin, s.handlePurgeStream)
	// Peeking shows message contents: an operator's right, not a
	// monitor's.
	handle("GET /api/streams/{stream}/messages", RoleAdmin, s.handlePeekStream)
	handle("GET /api/queues", RoleMonitor, s.handleQueues)
	handle("GET /api/queues/{stream}/{consumer}", RoleMonitor, s.handleQueue)
	handle("DELETE /api/queues/{stream}/{consumer}", RoleAdmin, s.handleDeleteQueue)
	handle("POST /api/queues/{stream}/{consumer}/purge", RoleAdmin, s.handlePurgeQueue)
	handle("GET /api/queues/{stream}/{consumer}/messages", RoleAdmin, s.handlePeekQueue)
	handle("GET /api/retained", RoleMonitor, s.handleRetained)
	handle("GET /api/uplinks", RoleMonitor, s.handleUplinks)

	// The console.
	m.Handle("GET /{$}", s.console("index.html"))
	m.Handle("GET /console/{file}", s.console(""))

	handle("/", RoleNone, s.notFound)
}
