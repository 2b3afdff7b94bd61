package writertest

import (
	"context"
	"errors"
	"sync/atomic"

	"gocloud.dev/blob"
	"gocloud.dev/blob/driver"
	"gocloud.dev/blob/memblob"
	"gocloud.dev/gcerrors"

	"github.com/tenantlake/tenantlake/lake"
)

// hookBucket is a blob driver over an in-memory bucket that calls a hook
// before every read, so a test can cancel a load at a known point (when the
// writer starts reading a given table's parts).
type hookBucket struct {
	b      *blob.Bucket
	onRead atomic.Pointer[func(key string)]
}

// newHookLake returns a mem:// lake and the bucket whose hook it calls.
func newHookLake() (*lake.Lake, *hookBucket) {
	h := &hookBucket{b: memblob.OpenBucket(nil)}
	return lake.NewLake(blob.NewBucket(h), "mem://writertest", ""), h
}

// setHook makes f run before every read; nil removes the hook.
func (h *hookBucket) setHook(f func(key string)) {
	if f == nil {
		h.onRead.Store(nil)
		return
	}
	h.onRead.Store(&f)
}

func (h *hookBucket) ErrorCode(err error) gcerrors.ErrorCode { return gcerrors.Code(err) }
func (h *hookBucket) As(any) bool                            { return false }
func (h *hookBucket) ErrorAs(error, any) bool                { return false }
func (h *hookBucket) Close() error                           { return h.b.Close() }

func (h *hookBucket) Attributes(ctx context.Context, key string) (*driver.Attributes, error) {
	a, err := h.b.Attributes(ctx, key)
	if err != nil {
		return nil, err
	}
	return &driver.Attributes{ContentType: a.ContentType, Metadata: a.Metadata, CreateTime: a.CreateTime,
		ModTime: a.ModTime, Size: a.Size, MD5: a.MD5, ETag: a.ETag}, nil
}

func (h *hookBucket) ListPaged(ctx context.Context, opts *driver.ListOptions) (*driver.ListPage, error) {
	token := opts.PageToken
	if token == nil {
		token = blob.FirstPageToken
	}
	size := opts.PageSize
	if size <= 0 {
		size = 1000
	}
	objs, next, err := h.b.ListPage(ctx, token, size, &blob.ListOptions{Prefix: opts.Prefix, Delimiter: opts.Delimiter})
	if err != nil {
		return nil, err
	}
	page := &driver.ListPage{NextPageToken: next}
	for _, o := range objs {
		page.Objects = append(page.Objects, &driver.ListObject{Key: o.Key, ModTime: o.ModTime, Size: o.Size, MD5: o.MD5, IsDir: o.IsDir})
	}
	return page, nil
}

func (h *hookBucket) NewRangeReader(ctx context.Context, key string, offset, length int64, _ *driver.ReaderOptions) (driver.Reader, error) {
	if f := h.onRead.Load(); f != nil {
		(*f)(key)
	}
	r, err := h.b.NewRangeReader(ctx, key, offset, length, nil)
	if err != nil {
		return nil, err
	}
	return hookReader{r}, nil
}

type hookReader struct{ *blob.Reader }

func (r hookReader) Attributes() *driver.ReaderAttributes {
	return &driver.ReaderAttributes{ContentType: r.ContentType(), ModTime: r.ModTime(), Size: r.Size()}
}
func (r hookReader) As(any) bool { return false }

func (h *hookBucket) NewTypedWriter(ctx context.Context, key, contentType string, opts *driver.WriterOptions) (driver.Writer, error) {
	if opts.BeforeWrite != nil {
		if err := opts.BeforeWrite(func(any) bool { return false }); err != nil {
			return nil, err
		}
	}
	return h.b.NewWriter(ctx, key, &blob.WriterOptions{ContentType: contentType, Metadata: opts.Metadata, IfNotExist: opts.IfNotExist})
}

func (h *hookBucket) Copy(ctx context.Context, dst, src string, _ *driver.CopyOptions) error {
	return h.b.Copy(ctx, dst, src, nil)
}

func (h *hookBucket) Delete(ctx context.Context, key string, opts *driver.DeleteOptions) error {
	if opts != nil && opts.BeforeDelete != nil {
		if err := opts.BeforeDelete(func(any) bool { return false }); err != nil {
			return err
		}
	}
	return h.b.Delete(ctx, key)
}

func (h *hookBucket) SignedURL(context.Context, string, *driver.SignedURLOptions) (string, error) {
	return "", errors.New("writertest: signed URLs are not supported")
}
