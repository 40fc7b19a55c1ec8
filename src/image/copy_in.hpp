// Copying a recipe's `files` into an image's tree without ever leaving it.
//
// The tree holds what packages and earlier copies made, links included; a
// recipe is code from others. Every step below the tree's top is taken with
// O_NOFOLLOW from an open directory, so no link in the tree, however it got
// there (a package's /var/run -> /run, or an earlier copy's link to a host
// directory), can lead a write outside it: a target that goes through a
// link is refused, naming the link. The source itself is followed (as the
// recipe's digest follows it); links below a source directory arrive as
// links, as the digest records them.
#pragma once

#include <filesystem>
#include <string>

namespace kestrel::image {

// Copies the host file or directory `from` to the absolute image path `to`
// below `tree`: a file's content, mode and times; a directory's entries into
// the directory there (made if missing, merged if present). Owners are
// ours (root in the image: a root build makes them root's, and fakeroot
// shows an unprivileged build's as root's). Throws Error naming the path on
// a link on the way, an entry that would replace one of another kind, a
// special file (device, fifo, socket) or a failed read or write.
void copy_into_tree(const std::filesystem::path& tree, const std::filesystem::path& from, const std::string& to);

}  // namespace kestrel::image
