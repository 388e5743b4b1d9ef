// Command thumbnails ports the seed article's parallel image processing
// case: a Pool(4) maps process_image over image files, and each worker
// resizes one image to 128x128 and saves it as processed_<name>.
//
//	def process_image(image_path):
//	    with Image.open(image_path) as img:
//	        img = img.resize((128, 128))
//	        img.save(f'processed_{image_path}')
//
//	image_paths = ['image1.jpg', 'image2.jpg', 'image3.jpg', 'image4.jpg']
//	with Pool(4) as p:
//	    p.map(process_image, image_paths)
//
// It reads PNG and JPEG files with Go's image packages and writes each
// result in its input's format. The resize is a box filter written here
// (every output pixel is the average of the input pixels it covers), so the
// example needs no module beyond the standard library; like PIL's
// resize((128, 128)) it does not keep the aspect ratio.
//
// Usage:
//
//	thumbnails [-dir DIR] [NAME...]
//
// NAMEs are files in DIR; without any, every .png, .jpg and .jpeg file in
// DIR is processed, except earlier processed_ outputs.
package main

import (
	"context"
	"flag"
	"fmt"
	"image"
	"image/draw"
	"image/jpeg"
	"image/png"
	"log"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/multiproc-go/multiproc"
)

// size is the side of the square thumbnails.
const size = 128

// processImage is the seed's process_image. It runs in a worker process and
// returns the path it wrote.
var processImage = multiproc.Register("thumbnails.process_image", multiproc.NoContext(func(path string) (string, error) {
	img, err := load(path)
	if err != nil {
		return "", err
	}
	out := filepath.Join(filepath.Dir(path), "processed_"+filepath.Base(path))
	if err := save(out, resize(img, size, size)); err != nil {
		return "", err
	}
	return out, nil
}))

func main() {
	multiproc.Main() // Go's `if __name__ == "__main__":`; must come first
	dir := flag.String("dir", ".", "directory holding the images; thumbnails are written there too")
	flag.Parse()
	if err := run(context.Background(), *dir, flag.Args()); err != nil {
		log.Fatal(err)
	}
}

func run(ctx context.Context, dir string, names []string) error {
	if len(names) == 0 {
		var err error
		if names, err = images(dir); err != nil {
			return err
		}
	}
	paths := make([]string, len(names))
	for i, name := range names {
		paths[i] = filepath.Join(dir, name)
	}
	p, err := multiproc.NewPool(ctx, 4)
	if err != nil {
		return err
	}
	defer p.Close()
	outs, err := multiproc.Map(ctx, p, processImage, paths)
	if err != nil {
		return err
	}
	for i, out := range outs {
		fmt.Printf("%s -> %s\n", names[i], filepath.Base(out))
	}
	return p.Close()
}

// images lists the PNG and JPEG files in dir, other than thumbnails.
func images(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range entries {
		name := e.Name()
		ext := strings.ToLower(filepath.Ext(name))
		if e.Type().IsRegular() && (ext == ".png" || ext == ".jpg" || ext == ".jpeg") && !strings.HasPrefix(name, "processed_") {
			names = append(names, name)
		}
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("no .png, .jpg or .jpeg files in %s", dir)
	}
	slices.Sort(names)
	return names, nil
}

func load(path string) (image.Image, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	img, _, err := image.Decode(f)
	if err != nil {
		return nil, fmt.Errorf("decoding %s: %w", path, err)
	}
	return img, nil
}

// save writes img to path in the format its extension names.
func save(path string, img image.Image) (err error) {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}()
	switch ext := strings.ToLower(filepath.Ext(path)); ext {
	case ".png":
		return png.Encode(f, img)
	case ".jpg", ".jpeg":
		return jpeg.Encode(f, img, &jpeg.Options{Quality: 90})
	default:
		return fmt.Errorf("saving %s: unknown image format %q", path, ext)
	}
}

// resize scales src to w×h with a box filter: each output pixel is the
// average of the source pixels it covers (at least one, so enlarging
// repeats pixels).
func resize(src image.Image, w, h int) *image.RGBA {
	sb := src.Bounds()
	sw, sh := sb.Dx(), sb.Dy()
	dst := image.NewRGBA(image.Rect(0, 0, w, h))
	if sw == 0 || sh == 0 {
		return dst
	}
	// One conversion to premultiplied RGBA (draw.Draw has fast paths for
	// the decoders' image types) makes the averaging a walk over bytes,
	// and averaging premultiplied values weighs colours by their alpha.
	s := image.NewRGBA(image.Rect(0, 0, sw, sh))
	draw.Draw(s, s.Bounds(), src, sb.Min, draw.Src)
	for y := range h {
		y0 := y * sh / h
		y1 := max((y+1)*sh/h, y0+1)
		for x := range w {
			x0 := x * sw / w
			x1 := max((x+1)*sw/w, x0+1)
			var sum [4]uint64
			for sy := y0; sy < y1; sy++ {
				row := s.Pix[sy*s.Stride+x0*4 : sy*s.Stride+x1*4]
				for i := 0; i < len(row); i += 4 {
					sum[0] += uint64(row[i])
					sum[1] += uint64(row[i+1])
					sum[2] += uint64(row[i+2])
					sum[3] += uint64(row[i+3])
				}
			}
			n := uint64((x1 - x0) * (y1 - y0))
			d := dst.Pix[y*dst.Stride+x*4:]
			for c := range sum {
				d[c] = uint8((sum[c] + n/2) / n)
			}
		}
	}
	return dst
}
