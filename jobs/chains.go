package jobs

import (
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

// Image is a resolved repo image: the folder holding its entrypoint.
type Image struct {
	Ref        string // canonical @owner/name:label
	Dir        string // <repos>/<owner>/<name>
	Entrypoint string // Dir/entrypoint
}

// Chain is a parsed config/chains value. This slice of jobfs runs a single
// image; the full grammar (bindings, edges, fan-out) builds on it.
type Chain struct {
	Steps []ChainStep
}

// ChainStep is one step of a chain: a label bound to an image.
type ChainStep struct {
	Label string
	Image Image
}

var imageRefRE = regexp.MustCompile(`^(?:@([a-z_][a-z0-9_.-]*)/)?([A-Za-z0-9][A-Za-z0-9._-]{0,63})(?::([A-Za-z0-9._/-]+))?$`)

// resolveChains parses a chains value for job j and resolves its images.
func (m *Manager) resolveChains(j Job, v string) (Chain, error) {
	var refs []string
	var lineNo []int
	for i, line := range strings.Split(v, "\n") {
		if k := strings.IndexByte(line, '#'); k >= 0 {
			line = line[:k]
		}
		if line = strings.TrimSpace(line); line != "" {
			refs = append(refs, line)
			lineNo = append(lineNo, i+1)
		}
	}
	if len(refs) == 0 {
		return Chain{}, errorf(ErrInvalid, "config/chains is empty: write an image name, e.g. report_builder")
	}
	if len(refs) > 1 || strings.ContainsAny(refs[0], "<->,") {
		return Chain{}, errorf(ErrInvalid, "config/chains: line %d: only a single image reference is supported yet", lineNo[0])
	}
	img, err := m.resolveImage(j, refs[0])
	if err != nil {
		return Chain{}, fmt.Errorf("config/chains: line %d: %w", lineNo[0], err)
	}
	return Chain{Steps: []ChainStep{{Label: filepath.Base(img.Dir), Image: img}}}, nil
}

// resolveImage turns `name` or `@owner/name:label` into the repo folder.
func (m *Manager) resolveImage(j Job, ref string) (Image, error) {
	sub := imageRefRE.FindStringSubmatch(ref)
	if sub == nil {
		return Image{}, errorf(ErrInvalid, "%q is not an image reference (name or @owner/name:label)", ref)
	}
	owner, name, label := sub[1], sub[2], sub[3]
	if owner == "" {
		owner = userName(j.Owner)
	}
	if label == "" {
		label = "latest"
	}
	if label != "latest" {
		return Image{}, errorf(ErrInvalid, "image %s: only the label latest is supported yet", ref)
	}
	img := Image{Ref: "@" + owner + "/" + name + ":" + label, Dir: filepath.Join(m.repos, owner, name)}
	img.Entrypoint = filepath.Join(img.Dir, "entrypoint")
	st, err := os.Stat(img.Entrypoint)
	if err != nil || !st.Mode().IsRegular() || st.Mode()&0o111 == 0 {
		return Image{}, errorf(ErrInvalid, "unknown image %s: no executable %s", img.Ref, img.Entrypoint)
	}
	return img, nil
}

// userName returns the login name of uid, or the number when it has none.
func userName(uid Owner) string {
	u, err := user.LookupId(strconv.FormatUint(uint64(uid), 10))
	if err != nil {
		return strconv.FormatUint(uint64(uid), 10)
	}
	return u.Username
}
