package metrics

import (
	"testing"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

func TestParserLinks(t *testing.T) { _ = expfmt.NewTextParser(model.UTF8Validation) }
