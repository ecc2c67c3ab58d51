package jobs

import (
	"context"
	"log"
	"log/slog"
	"strconv"
	"strings"
)

// lineHandler writes slog records as the daemon's text lines:
// "DATE TIME jobfs: MESSAGE key=value ...", through a log.Logger that adds
// the time and prefix, so the lines read as before with owner, job and run
// after the message.
type lineHandler struct {
	l     *log.Logger
	attrs string // rendered attributes of WithAttrs
	group string // prefix of the keys of WithGroup
}

// NewLineHandler returns the text handler of the daemon's log.
func NewLineHandler(l *log.Logger) slog.Handler { return &lineHandler{l: l} }

func (h *lineHandler) Enabled(_ context.Context, level slog.Level) bool {
	return level >= slog.LevelInfo
}

// Handle writes "JOB: MESSAGE owner=... run=...": the job first, as the
// lines always named it, then the other attributes.
func (h *lineHandler) Handle(_ context.Context, r slog.Record) error {
	var b, rest strings.Builder
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "job" && h.group == "" && b.Len() == 0 {
			b.WriteString(a.Value.String() + ": ")
		} else {
			writeAttr(&rest, h.group, a)
		}
		return true
	})
	b.WriteString(r.Message)
	b.WriteString(h.attrs)
	b.WriteString(rest.String())
	return h.l.Output(4, b.String())
}

func (h *lineHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	var b strings.Builder
	for _, a := range attrs {
		writeAttr(&b, h.group, a)
	}
	return &lineHandler{l: h.l, attrs: h.attrs + b.String(), group: h.group}
}

func (h *lineHandler) WithGroup(name string) slog.Handler {
	return &lineHandler{l: h.l, attrs: h.attrs, group: h.group + name + "."}
}

// writeAttr appends " key=value", the value quoted when it holds a space
// or a quote (so a line splits on spaces into its fields).
func writeAttr(b *strings.Builder, group string, a slog.Attr) {
	if a.Equal(slog.Attr{}) {
		return
	}
	v := a.Value.Resolve().String()
	if v == "" || strings.ContainsAny(v, " \t\"=") {
		v = strconv.Quote(v)
	}
	b.WriteString(" " + group + a.Key + "=" + v)
}
