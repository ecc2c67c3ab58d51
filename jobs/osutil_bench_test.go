package jobs

import "os"

func osWriteExec(path, content string) error { return os.WriteFile(path, []byte(content), 0o755) }
