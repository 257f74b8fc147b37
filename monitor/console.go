package monitor

import (
	"embed"
	"mime"
	"net/http"
	"path"
)

// The console is three files, written by hand and embedded as they are:
// no build step, no CDN, nothing fetched from elsewhere.
//
//go:embed console
var consoleFiles embed.FS

// consoleCSP lets the page load its own script and style and talk to this
// server only, and never be framed.
const consoleCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
	"base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// console serves one of the console's files: name, or the path's {file}.
func (s *Server) console(name string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		file := name
		if file == "" {
			file = r.PathValue("file")
		}
		b, err := consoleFiles.ReadFile("console/" + file)
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Content-Security-Policy", consoleCSP)
		if err != nil || path.Base(file) != file {
			writeError(w, http.StatusNotFound, "no such file: "+r.URL.Path)
			return
		}
		if !s.allow(w, r, RoleMonitor) {
			return
		}
		ct := mime.TypeByExtension(path.Ext(file))
		if ct == "" {
			ct = "application/octet-stream"
		}
		h.Set("Content-Type", ct)
		h.Set("Cache-Control", "no-cache")
		_, _ = w.Write(b)
	})
}
