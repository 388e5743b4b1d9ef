package main

import (
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/multiproc-go/multiproc"
	"github.com/multiproc-go/multiproc/examples/internal/extest"
	"github.com/multiproc-go/multiproc/internal/testutil"
)

func TestMain(m *testing.M) {
	multiproc.Main()
	testutil.Run(m)
}

// writeImage encodes img into dir/name in the format of name's extension.
func writeImage(t *testing.T, dir, name string, img image.Image) {
	t.Helper()
	f, err := os.Create(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if strings.HasSuffix(name, ".png") {
		err = png.Encode(f, img)
	} else {
		err = jpeg.Encode(f, img, &jpeg.Options{Quality: 95})
	}
	if err != nil {
		t.Fatal(err)
	}
}

// readImage decodes dir/name with the decoder of its extension, so a
// thumbnail written in the wrong format fails.
func readImage(t *testing.T, dir, name string) image.Image {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var img image.Image
	if strings.HasSuffix(name, ".png") {
		img, err = png.Decode(f)
	} else {
		img, err = jpeg.Decode(f)
	}
	if err != nil {
		t.Fatalf("decoding %s: %v", name, err)
	}
	return img
}

func gray(c color.Color) uint32 {
	r, g, b, _ := c.RGBA()
	return (r + g + b) / 3 >> 8
}

// TestThumbnails generates three images (a downscaled two-tone PNG, an
// upscaled red JPEG, a tall grey gradient PNG), runs the example on their
// directory and checks that each thumbnail exists, is 128x128 in its
// input's format, and still looks like its input.
func TestThumbnails(t *testing.T) {
	dir := t.TempDir()

	half := image.NewNRGBA(image.Rect(0, 0, 256, 64)) // left black, right white
	for y := range 64 {
		for x := range 256 {
			v := uint8(0)
			if x >= 128 {
				v = 255
			}
			half.SetNRGBA(x, y, color.NRGBA{v, v, v, 255})
		}
	}
	writeImage(t, dir, "half.png", half)

	red := image.NewRGBA(image.Rect(0, 0, 64, 48))
	for y := range 48 {
		for x := range 64 {
			red.Set(x, y, color.RGBA{255, 0, 0, 255})
		}
	}
	writeImage(t, dir, "red.jpg", red)

	gradient := image.NewGray(image.Rect(0, 0, 37, 500)) // dark at the top
	for y := range 500 {
		for x := range 37 {
			gradient.SetGray(x, y, color.Gray{uint8(y * 255 / 499)})
		}
	}
	writeImage(t, dir, "tall.png", gradient)

	out := extest.Run(t, extest.Build(t), "-dir", dir)
	want := []string{"half.png -> processed_half.png", "red.jpg -> processed_red.jpg", "tall.png -> processed_tall.png"}
	if got := extest.Lines(out); !slices.Equal(got, want) {
		t.Errorf("output %q, want %q", got, want)
	}

	thumbs := map[string]image.Image{}
	for _, name := range []string{"processed_half.png", "processed_red.jpg", "processed_tall.png"} {
		img := readImage(t, dir, name)
		if got := img.Bounds().Size(); got != image.Pt(128, 128) {
			t.Errorf("%s is %v, want 128x128", name, got)
		}
		thumbs[name] = img
	}
	if t.Failed() {
		t.FailNow()
	}
	// Each thumbnail pixel of half.png averages two source columns of one
	// colour: the halves stay exactly black and white.
	if l, r := gray(thumbs["processed_half.png"].At(63, 50)), gray(thumbs["processed_half.png"].At(64, 50)); l != 0 || r != 255 {
		t.Errorf("processed_half.png at x=63, 64: grey %d, %d; want 0, 255", l, r)
	}
	// JPEG is lossy: red within a margin.
	if r, g, b, _ := thumbs["processed_red.jpg"].At(64, 64).RGBA(); r>>8 < 230 || g>>8 > 30 || b>>8 > 30 {
		t.Errorf("processed_red.jpg centre is rgb(%d, %d, %d), want about (255, 0, 0)", r>>8, g>>8, b>>8)
	}
	if top, bottom := gray(thumbs["processed_tall.png"].At(5, 0)), gray(thumbs["processed_tall.png"].At(5, 127)); top > 5 || bottom < 250 {
		t.Errorf("processed_tall.png: grey %d at the top, %d at the bottom; want about 0 and 255", top, bottom)
	}
}

// TestBrokenImage checks that a file that does not decode fails the run
// with an error naming it, as the exception would in Python's map.
func TestBrokenImage(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "broken.png"), []byte("not a png"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := extest.Exec(t, extest.Build(t), "-dir", dir, "broken.png")
	if r.Err == nil {
		t.Fatalf("the run succeeded on a broken image; stdout:\n%s", r.Stdout)
	}
	if !strings.Contains(r.Stderr, "decoding "+filepath.Join(dir, "broken.png")) {
		t.Errorf("stderr %q does not name the broken file", r.Stderr)
	}
}
