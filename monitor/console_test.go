package monitor

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	amqp "github.com/rabbitmq/amqp091-go"
)

// chromium finds Debian's chromium (or another Chrome); the browser test
// is skipped without one, and CI installs it (.ci/run).
func chromium(t *testing.T) string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("no chromium: the console's browser test needs it (apt-get install chromium); CI runs it")
	return ""
}

// browser starts headless chromium for the test, with what it needs to
// run as root on a machine without network.
func browser(t *testing.T, width, height int) (context.Context, *consoleLog) {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium(t)),
		chromedp.NoSandbox,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.WindowSize(width, height),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	// chromedp logs the browser events it does not know (newer Chromes
	// send more); only its other complaints are the test's business.
	ctx, cancelCtx := chromedp.NewContext(actx, chromedp.WithErrorf(func(format string, args ...any) {
		if !strings.HasPrefix(format, "unhandled") {
			t.Logf("chromedp: "+format, args...)
		}
	}))
	ctx, cancelTimeout := context.WithTimeout(ctx, 60*time.Second)
	t.Cleanup(func() { cancelTimeout(); cancelCtx(); cancelAlloc() })
	cl := &consoleLog{}
	chromedp.ListenTarget(ctx, func(ev any) {
		switch e := ev.(type) {
		case *runtime.EventExceptionThrown:
			cl.add("exception: " + e.ExceptionDetails.Error())
		case *log.EventEntryAdded:
			if e.Entry.Level == log.LevelError {
				cl.add("console: " + e.Entry.Text)
			}
		case *runtime.EventConsoleAPICalled:
			if e.Type == runtime.APITypeError {
				cl.add("console.error")
			}
		}
	})
	if err := chromedp.Run(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return ctx, cl
}

// consoleLog gathers the page's errors: a script error or a resource the
// Content-Security-Policy blocked fails the test.
type consoleLog struct {
	mu   sync.Mutex
	errs []string
}

func (c *consoleLog) add(s string) {
	c.mu.Lock()
	c.errs = append(c.errs, s)
	c.mu.Unlock()
}

func (c *consoleLog) check(t *testing.T) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, e := range c.errs {
		t.Errorf("page error: %s", e)
	}
}

// textOf waits until the element's text is want.
func textOf(sel, want string) chromedp.Action {
	return chromedp.Poll(`(() => { const e = document.querySelector(`+jsString(sel)+`); return e !== null && e.textContent === `+jsString(want)+`; })()`,
		nil, chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(20*time.Second))
}

func jsString(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}

func saveScreenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	var png []byte
	if err := chromedp.Run(ctx, chromedp.FullScreenshot(&png, 100)); err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", path)
	if dir := os.Getenv("LEDGE_CONSOLE_SCREENSHOTS"); dir != "" {
		_ = os.WriteFile(filepath.Join(dir, name), png, 0o644)
	}
}

// TestConsoleInBrowser loads the console in headless chromium, finds the
// queue the test's AMQP worker holds a message of with the counts it
// made, purges it through the confirmation, and sees it empty. A queue
// named like an HTML tag shows as text.
func TestConsoleInBrowser(t *testing.T) {
	ctx, cl := browser(t, 1280, 900)
	r := newRig(t, Options{})
	tr := r.makeTraffic(t)
	ch, err := tr.amqpConn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	evil := `<img src=x id=pwned onerror="document.title='pwned'">`
	if _, err := ch.QueueDeclare(evil, false, false, false, false, amqp.Table{}); err != nil {
		t.Fatal(err)
	}

	row := `tr[data-key="AMQP_q_task_queue/amqp"]`
	jobs := `tr[data-key="JOBS/workers"]`
	err = chromedp.Run(ctx,
		chromedp.Navigate(r.http.URL+"/"),
		chromedp.WaitVisible(row+` td.ready`),
		textOf(row+` td.ready`, "2"),
		textOf(row+` td.unacked`, "1"),
		textOf(jobs+` td.ready`, "5"),
		textOf(jobs+` td.unacked`, "2"),
		textOf(`#health`, "ok"),
		textOf(`#card-conns`, "4"),
	)
	if err != nil {
		t.Fatalf("the queue table with the test's counts: %v", err)
	}
	var imgs int
	var title, names string
	if err := chromedp.Run(ctx,
		chromedp.Evaluate(`document.querySelectorAll('#queues img, #pwned').length`, &imgs),
		chromedp.Title(&title),
		chromedp.Evaluate(`[...document.querySelectorAll('#queues td.name')].map(e => e.textContent).join('|')`, &names),
	); err != nil {
		t.Fatal(err)
	}
	if imgs != 0 || title == "pwned" || !strings.Contains(names, evil) {
		t.Errorf("a queue name became markup: %d images, title %q, names %q", imgs, title, names)
	}
	saveScreenshot(t, ctx, "console-before.png")

	// Purge, confirm, and see the queue empty.
	var dialogText string
	err = chromedp.Run(ctx,
		chromedp.Click(row+` button.purge`),
		chromedp.WaitVisible(`#confirm-ok`),
		chromedp.Text(`#confirm-text`, &dialogText),
	)
	if err != nil {
		t.Fatalf("purge: %v", err)
	}
	if !strings.Contains(dialogText, "task_queue") {
		t.Errorf("the confirmation says %q", dialogText)
	}
	saveScreenshot(t, ctx, "console-confirm.png")
	if err := chromedp.Run(ctx, chromedp.Click(`#confirm-ok`), textOf(row+` td.ready`, "0"), textOf(`#toast`, "Purged task_queue: 3 messages removed")); err != nil {
		t.Fatalf("after the purge: %v", err)
	}
	var ql QueueList
	r.getJSON(t, "/api/queues?name=task_queue", &ql)
	if ql.Queues[0].Ready != 0 {
		t.Errorf("the broker still has %d ready", ql.Queues[0].Ready)
	}
	saveScreenshot(t, ctx, "console-purged.png")

	// Cancel leaves things as they are.
	if err := chromedp.Run(ctx, chromedp.Click(jobs+` button.purge`), chromedp.WaitVisible(`#confirm-cancel`), chromedp.Click(`#confirm-cancel`)); err != nil {
		t.Fatal(err)
	}
	r.getJSON(t, "/api/queues", &ql)
	if q := findQueue(t, ql, "JOBS", "workers"); q.Ready != 5 {
		t.Errorf("a cancelled purge removed messages: %+v", q)
	}

	// The other tabs show the connections and streams.
	if err := chromedp.Run(ctx,
		chromedp.Click(`button[data-tab=connections]`),
		chromedp.WaitVisible(`#connections tbody tr`),
		chromedp.Click(`button[data-tab=streams]`),
		chromedp.WaitVisible(`#streams tr[data-key="JOBS"]`),
		chromedp.Click(`button[data-tab=uplinks]`),
		chromedp.WaitVisible(`#uplinks-none`),
	); err != nil {
		t.Fatalf("tabs: %v", err)
	}
	cl.check(t)
}

// TestConsoleOnAPhone: on a phone-sized screen the page does not scroll
// sideways (tables scroll in their own box) and the queue table is there.
func TestConsoleOnAPhone(t *testing.T) {
	ctx, cl := browser(t, 390, 844)
	r := newRig(t, Options{})
	r.makeTraffic(t)
	var overflow bool
	err := chromedp.Run(ctx,
		chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2), chromedp.EmulateMobile),
		chromedp.Navigate(r.http.URL+"/"),
		textOf(`tr[data-key="JOBS/workers"] td.ready`, "5"),
		chromedp.Evaluate(`document.documentElement.scrollWidth > window.innerWidth + 1`, &overflow),
	)
	if err != nil {
		t.Fatal(err)
	}
	if overflow {
		t.Errorf("the page is wider than the phone's screen")
	}
	saveScreenshot(t, ctx, "console-phone.png")
	cl.check(t)
}
