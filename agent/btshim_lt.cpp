/* SPDX-License-Identifier: MIT */
/*
 * btshim.h on libtorrent-rasterbar 2.0: the agent's only C++ file. Every
 * exported function catches every exception. The session runs libtorrent's
 * own threads; ours only poll. Alerts wake the caller through an eventfd
 * (libtorrent's alert notification writes to it), hashing jobs run on
 * threads of their own and post their result to the same mailbox, and
 * btshim_poll() turns both into btshim_event_t.
 *
 * Torrents are v1-only: the merged item carries the v1 info-hash, which
 * the original client reads, and a v1-only torrent hashes each piece once
 * (a hybrid one would also build SHA-256 Merkle trees and pad files).
 */
#include "btshim.h"

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <deque>
#include <exception>
#include <map>
#include <memory>
#include <mutex>
#include <new>
#include <string>
#include <thread>
#include <vector>

#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libtorrent/add_torrent_params.hpp>
#include <libtorrent/alert_types.hpp>
#include <libtorrent/bencode.hpp>
#include <libtorrent/create_torrent.hpp>
#include <libtorrent/extensions/smart_ban.hpp>
#include <libtorrent/extensions/ut_metadata.hpp>
#include <libtorrent/fingerprint.hpp>
#include <libtorrent/ip_filter.hpp>
#include <libtorrent/magnet_uri.hpp>
#include <libtorrent/read_resume_data.hpp>
#include <libtorrent/session.hpp>
#include <libtorrent/session_params.hpp>
#include <libtorrent/settings_pack.hpp>
#include <libtorrent/torrent_info.hpp>
#include <libtorrent/torrent_status.hpp>
#include <libtorrent/version.hpp>
#include <libtorrent/write_resume_data.hpp>

namespace
{

/* Where hashing threads and libtorrent's alert notification leave word
 * for the poller. Shared with detached threads: it outlives the session
 * until the last of them is done. */
struct mailbox {
    std::mutex mu;
    std::deque<btshim_event_t> events; /* finished jobs, and alerts converted */
    int efd = -1;
    ~mailbox()
    {
        for (auto &ev : events)
            btshim_event_clear(&ev);
        if (efd >= 0)
            close(efd);
    }
    void wake()
    {
        uint64_t one = 1;
        ssize_t rc = write(efd, &one, sizeof one);
        (void)rc; /* EAGAIN: already readable */
    }
};

struct job {
    uint64_t id = 0;
    std::string path;
    int piece_size = 0;
    int hashing_threads = 0;
    std::atomic<uint64_t> done{0}, total{0};
    std::atomic<bool> cancelled{false}, finished{false};
};

int set_error(btshim_error_t *err, int code, const char *what, const char *detail = nullptr)
{
    if (err) {
        err->code = code;
        std::snprintf(err->message, sizeof err->message, "%s%s%s", what, detail ? ": " : "",
                      detail ? detail : "");
    }
    return code;
}

void hex_of(const lt::sha1_hash &h, char out[BTSHIM_HASH_HEX])
{
    static const char digits[] = "0123456789abcdef";
    const auto *p = reinterpret_cast<const unsigned char *>(h.data());
    for (int i = 0; i < 20; i++) {
        out[2 * i] = digits[p[i] >> 4];
        out[2 * i + 1] = digits[p[i] & 15];
    }
    out[40] = '\0';
}

bool parse_hex(const char *hex, lt::sha1_hash &out)
{
    if (!hex || std::strlen(hex) != 40)
        return false;
    char *p = out.data();
    for (int i = 0; i < 20; i++) {
        int v = 0;
        for (int k = 0; k < 2; k++) {
            char c = hex[2 * i + k];
            v <<= 4;
            if (c >= '0' && c <= '9')
                v |= c - '0';
            else if (c >= 'a' && c <= 'f')
                v |= c - 'a' + 10;
            else
                return false;
        }
        p[i] = static_cast<char>(v);
    }
    return true;
}

btshim_event_t blank_event(btshim_event_type_t type)
{
    btshim_event_t ev;
    std::memset(&ev, 0, sizeof ev);
    ev.type = type;
    return ev;
}

void copy_text(char *dst, size_t cap, const std::string &s)
{
    std::snprintf(dst, cap, "%s", s.c_str());
}

/* Data owned by an event: malloc'd, freed by btshim_event_clear(). */
bool give_data(btshim_event_t &ev, const std::vector<char> &buf)
{
    ev.data = std::malloc(buf.size() ? buf.size() : 1);
    if (!ev.data)
        return false;
    std::memcpy(ev.data, buf.data(), buf.size());
    ev.data_len = buf.size();
    return true;
}

std::string dir_of(const std::string &path)
{
    auto slash = path.find_last_of('/');
    if (slash == std::string::npos)
        return ".";
    return slash == 0 ? "/" : path.substr(0, slash);
}

/* Hash `j->path` into a v1 torrent and post the outcome. */
void run_job(std::shared_ptr<job> j, std::shared_ptr<mailbox> box)
{
    btshim_event_t ev = blank_event(BTSHIM_EV_CREATE_FAILED);
    ev.job = j->id;
    try {
        lt::file_storage fs;
        /* links inside a folder are skipped: a link must not share what
         * it points to (a folder unpacked from elsewhere may hold one to
         * ~/.ssh); the path itself may be one */
        const std::string top = j->path;
        lt::add_files(
            fs, j->path,
            [&top](std::string const &p) {
                struct stat st;
                return p == top || lstat(p.c_str(), &st) != 0 || !S_ISLNK(st.st_mode);
            },
            lt::create_torrent::v1_only);
        if (fs.num_files() == 0)
            throw std::runtime_error("no files to share");
        j->total = static_cast<uint64_t>(fs.total_size());
        lt::create_torrent t(fs, j->piece_size, lt::create_torrent::v1_only);
        t.set_creator("bitween");
        lt::settings_pack sp;
        if (j->hashing_threads > 0)
            sp.set_int(lt::settings_pack::hashing_threads, j->hashing_threads);
        lt::error_code ec;
        lt::set_piece_hashes(
            t, dir_of(j->path), sp,
            [&](lt::piece_index_t i) { j->done += static_cast<uint64_t>(t.piece_size(i)); }, ec);
        if (ec)
            throw std::runtime_error(ec.message());
        std::vector<char> buf;
        lt::bencode(std::back_inserter(buf), t.generate());
        lt::torrent_info ti(lt::span<const char>(buf.data(), static_cast<long>(buf.size())),
                            lt::from_span);
        ev.type = BTSHIM_EV_CREATED;
        hex_of(ti.info_hashes().v1, ev.hash);
        if (!give_data(ev, buf))
            throw std::bad_alloc();
    } catch (const std::bad_alloc &) {
        ev.type = BTSHIM_EV_CREATE_FAILED;
        btshim_event_clear(&ev);
        copy_text(ev.message, sizeof ev.message, "out of memory");
    } catch (const std::exception &e) {
        ev.type = BTSHIM_EV_CREATE_FAILED;
        btshim_event_clear(&ev);
        copy_text(ev.message, sizeof ev.message, e.what());
    } catch (...) {
        ev.type = BTSHIM_EV_CREATE_FAILED;
        btshim_event_clear(&ev);
        copy_text(ev.message, sizeof ev.message, "unknown error");
    }
    j->finished = true;
    try {
        std::lock_guard<std::mutex> lock(box->mu);
        if (j->cancelled) { /* its end was reported when it was cancelled */
            btshim_event_clear(&ev);
            return;
        }
        box->events.push_back(ev);
        box->wake();
    } catch (...) {
        btshim_event_clear(&ev);
    }
}

} // namespace

struct btshim_session {
    std::unique_ptr<lt::session> ses;
    std::shared_ptr<mailbox> box;
    std::map<uint64_t, std::shared_ptr<job>> jobs; /* running or cancelled and still running */
    uint64_t next_job = 1;
    unsigned max_jobs = 4;
    int hashing_threads = 0;
};

#define GUARD_BEGIN try {
#define GUARD_END(err)                                                                             \
    }                                                                                              \
    catch (const std::bad_alloc &)                                                                 \
    {                                                                                              \
        return set_error(err, BTSHIM_ENOMEM, "out of memory");                                     \
    }                                                                                              \
    catch (const std::exception &e)                                                                \
    {                                                                                              \
        return set_error(err, BTSHIM_EINTERNAL, "libtorrent", e.what());                           \
    }                                                                                              \
    catch (...)                                                                                    \
    {                                                                                              \
        return set_error(err, BTSHIM_EINTERNAL, "libtorrent: unknown error");                      \
    }

static lt::torrent_handle find_handle(btshim_session_t *ses, const char *hash)
{
    lt::sha1_hash h;
    if (!ses || !parse_hex(hash, h))
        return lt::torrent_handle();
    return ses->ses->find_torrent(h);
}

/* `fn(handle)` on the torrent `hash`, every exception caught; ENOTFOUND
 * when the session has no such torrent. */
template <typename Fn>
static int on_torrent(btshim_session_t *ses, const char *hash, btshim_error_t *err, Fn fn)
{
    GUARD_BEGIN
    lt::torrent_handle h = find_handle(ses, hash);
    if (!h.is_valid())
        return set_error(err, BTSHIM_ENOTFOUND, "no such torrent");
    return fn(h);
    GUARD_END(err)
}

/* The torrent `v1`'s resume data, or empty parameters when `resume` is
 * missing, unreadable or of another torrent. */
static lt::add_torrent_params resume_of(const void *resume, size_t len, const lt::sha1_hash &v1)
{
    if (!resume || !len || len > (size_t)INT32_MAX)
        return lt::add_torrent_params();
    lt::error_code ec;
    lt::add_torrent_params atp = lt::read_resume_data(
        lt::span<const char>(static_cast<const char *>(resume), static_cast<long>(len)), ec);
    if (ec || atp.info_hashes.v1 != v1)
        return lt::add_torrent_params();
    return atp;
}

extern "C" {

const char *btshim_backend(void)
{
    return "libtorrent " LIBTORRENT_VERSION;
}

btshim_session_t *btshim_session_new(const btshim_settings_t *s, btshim_error_t *err)
{
    btshim_session_t *ses = nullptr;
    try {
        btshim_settings_t d;
        std::memset(&d, 0, sizeof d);
        if (!s)
            s = &d;
        if (s->download_rate_limit < 0 || s->upload_rate_limit < 0 || s->hashing_threads < 0) {
            set_error(err, BTSHIM_EINVAL, "rates and thread counts must not be negative");
            return nullptr;
        }
        std::unique_ptr<btshim_session_t> n(new btshim_session_t);
        n->box = std::make_shared<mailbox>();
        n->box->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (n->box->efd < 0) {
            set_error(err, BTSHIM_EINTERNAL, "eventfd", std::strerror(errno));
            return nullptr;
        }
        n->max_jobs = s->max_jobs ? s->max_jobs : 4;
        n->hashing_threads = s->hashing_threads;

        lt::settings_pack p;
        p.set_str(lt::settings_pack::listen_interfaces,
                  s->listen_interfaces ? s->listen_interfaces : "0.0.0.0:0,[::]:0");
        /* peers come only from XMPP: no DHT, no local discovery; torrents
         * made here name no tracker */
        p.set_bool(lt::settings_pack::enable_dht, false);
        p.set_bool(lt::settings_pack::enable_lsd, false);
        p.set_bool(lt::settings_pack::enable_upnp, s->upnp != 0);
        p.set_bool(lt::settings_pack::enable_natpmp, s->natpmp != 0);
        p.set_int(lt::settings_pack::download_rate_limit, s->download_rate_limit);
        p.set_int(lt::settings_pack::upload_rate_limit, s->upload_rate_limit);
        p.set_str(lt::settings_pack::user_agent, s->user_agent ? s->user_agent : "bitween");
        p.set_str(lt::settings_pack::peer_fingerprint, lt::generate_fingerprint("BW", 0, 2, 0, 0));
        /* a user's devices and contacts may share one address (NAT, tests) */
        p.set_bool(lt::settings_pack::allow_multiple_connections_per_ip, true);
        /* Connect to contacts over TCP; uTP connections from them are still
         * accepted. libtorrent tries uTP first otherwise, and its uTP
         * drops datagrams at fast links' rates: 7-15 MB/s on loopback
         * against about 270 MB/s over TCP here (docs/benchmarks.md). */
        p.set_bool(lt::settings_pack::enable_outgoing_utp, false);
        p.set_int(lt::settings_pack::alert_mask,
                  lt::alert_category::error | lt::alert_category::status |
                      lt::alert_category::storage | lt::alert_category::port_mapping);
        /* no plugin from the start (ut_pex would hand contacts' addresses
         * to any peer); then only these two */
        lt::session_params params(std::move(p), {});
        n->ses.reset(new lt::session(std::move(params)));
        /* rate limits hold for every peer: contacts are often on the same
         * network, which libtorrent would otherwise leave unlimited */
        {
            lt::ip_filter f;
            const std::uint32_t global =
                1u << static_cast<std::uint32_t>(lt::session_handle::global_peer_class_id);
            f.add_rule(lt::make_address("0.0.0.0"), lt::make_address("255.255.255.255"), global);
            f.add_rule(lt::make_address("::"),
                       lt::make_address("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"), global);
            n->ses->set_peer_class_filter(f);
        }
        n->ses->add_extension(&lt::create_ut_metadata_plugin);
        n->ses->add_extension(&lt::create_smart_ban_plugin);
        std::weak_ptr<mailbox> weak = n->box;
        n->ses->set_alert_notify([weak]() {
            if (auto b = weak.lock())
                b->wake();
        });
        ses = n.release();
    } catch (const std::bad_alloc &) {
        set_error(err, BTSHIM_ENOMEM, "out of memory");
    } catch (const std::exception &e) {
        set_error(err, BTSHIM_EINTERNAL, "libtorrent", e.what());
    } catch (...) {
        set_error(err, BTSHIM_EINTERNAL, "libtorrent: unknown error");
    }
    return ses;
}

void btshim_session_free(btshim_session_t *ses)
{
    if (!ses)
        return;
    try {
        ses->ses->set_alert_notify([] {});
        {
            std::lock_guard<std::mutex> lock(ses->box->mu);
            for (auto &kv : ses->jobs)
                kv.second->cancelled = true; /* their threads finish and drop it */
        }
        ses->ses.reset(); /* stops libtorrent's threads */
    } catch (...) {
    }
    delete ses;
}

int btshim_session_wake_fd(const btshim_session_t *ses)
{
    return ses && ses->box ? ses->box->efd : -1;
}

int btshim_session_set_rates(btshim_session_t *ses, int download, int upload, btshim_error_t *err)
{
    GUARD_BEGIN
    if (!ses || download < 0 || upload < 0)
        return set_error(err, BTSHIM_EINVAL, "rates must not be negative");
    lt::settings_pack p;
    p.set_int(lt::settings_pack::download_rate_limit, download);
    p.set_int(lt::settings_pack::upload_rate_limit, upload);
    ses->ses->apply_settings(std::move(p));
    return BTSHIM_OK;
    GUARD_END(err)
}

int btshim_session_listen_ports(btshim_session_t *ses, uint16_t *ports, size_t max, size_t *n,
                                btshim_error_t *err)
{
    GUARD_BEGIN
    if (!ses || !n || (max && !ports))
        return set_error(err, BTSHIM_EINVAL, "bad arguments");
    *n = 0;
    unsigned short port = ses->ses->listen_port();
    if (port && max)
        ports[(*n)++] = port;
    return BTSHIM_OK;
    GUARD_END(err)
}

int btshim_create_start(btshim_session_t *ses, const char *path, int piece_size, uint64_t *job_id,
                        btshim_error_t *err)
{
    GUARD_BEGIN
    if (!ses || !path || path[0] != '/' || !job_id || piece_size < 0)
        return set_error(err, BTSHIM_EINVAL, "an absolute path is needed");
    {
        /* forget the jobs whose threads are done */
        std::lock_guard<std::mutex> lock(ses->box->mu);
        for (auto it = ses->jobs.begin(); it != ses->jobs.end();)
            it = it->second->finished ? ses->jobs.erase(it) : std::next(it);
        if (ses->jobs.size() >= ses->max_jobs)
            return set_error(err, BTSHIM_ELIMIT, "too many hashing jobs at once");
    }
    auto j = std::make_shared<job>();
    j->id = ses->next_job++;
    j->path = path;
    j->piece_size = piece_size;
    j->hashing_threads = ses->hashing_threads;
    {
        std::lock_guard<std::mutex> lock(ses->box->mu);
        ses->jobs[j->id] = j;
    }
    std::thread(run_job, j, ses->box).detach();
    *job_id = j->id;
    return BTSHIM_OK;
    GUARD_END(err)
}

int btshim_create_progress(btshim_session_t *ses, uint64_t job_id, uint64_t *done, uint64_t *total,
                           btshim_error_t *err)
{
    GUARD_BEGIN
    if (!ses)
        return set_error(err, BTSHIM_EINVAL, "bad arguments");
    std::lock_guard<std::mutex> lock(ses->box->mu);
    auto it = ses->jobs.find(job_id);
    if (it == ses->jobs.end() || it->second->cancelled)
        return set_error(err, BTSHIM_ENOTFOUND, "no such hashing job");
    if (done)
        *done = it->second->done;
    if (total)
        *total = it->second->total;
    return BTSHIM_OK;
    GUARD_END(err)
}

int btshim_create_cancel(btshim_session_t *ses, uint64_t job_id, btshim_error_t *err)
{
    GUARD_BEGIN
    if (!ses)
        return set_error(err, BTSHIM_EINVAL, "bad arguments");
    std::lock_guard<std::mutex> lock(ses->box->mu);
    auto it = ses->jobs.find(job_id);
    if (it == ses->jobs.end() || it->second->cancelled || it->second->finished)
        return set_error(err, BTSHIM_ENOTFOUND, "no such hashing job");
    /* libtorrent cannot stop set_piece_hashes(): the thread reads on and
     * its result is dropped; it still counts against max_jobs until done */
    it->second->cancelled = true;
    btshim_event_t ev = blank_event(BTSHIM_EV_CREATE_FAILED);
    ev.job = job_id;
    copy_text(ev.message, sizeof ev.message, "cancelled");
    ses->box->events.push_back(ev);
    ses->box->wake();
    return BTSHIM_OK;
    GUARD_END(err)
}

int btshim_torrent_add(btshim_session_t *ses, const void *torrent, size_t len,
                       const char *save_path, const void *resume, size_t resume_len, int flags,
                       char hash[BTSHIM_HASH_HEX], btshim_error_t *err)
{
    GUARD_BEGIN
    if (!ses || !torrent || !len || !save_path || !hash || len > (size_t)INT32_MAX)
        return set_error(err, BTSHIM_EINVAL, "bad arguments");
    lt::error_code ec;
    auto ti = std::make_shared<lt::torrent_info>(
        lt::span<const char>(static_cast<const char *>(torrent), static_cast<long>(len)), ec,
        lt::from_span);
    if (ec)
        return set_error(err, BTSHIM_EINVAL, "not a torrent file", ec.message().c_str());
    /* without usable resume data the data is checked */
    lt::add_torrent_params atp = resume_of(resume, resume_len, ti->info_hashes().v1);
    if (ses->ses->find_torrent(ti->info_hashes().v1).is_valid())
        return set_error(err, BTSHIM_EEXIST, "the torrent is already in the session");
    hex_of(ti->info_hashes().v1, hash);
    atp.ti = ti;
    atp.save_path = save_path;
    /* every share seeds: no queueing of "inactive" torrents */
    atp.flags &= ~(lt::torrent_flags::auto_managed | lt::torrent_flags::paused);
    if (flags & BTSHIM_ADD_SEED_MODE)
        atp.flags |= lt::torrent_flags::seed_mode;
    /* upload mode requests no piece, so a share whose files changed is
     * never "repaired" by writing contacts' data over them */
    if (flags & BTSHIM_ADD_UPLOAD_ONLY)
        atp.flags |= lt::torrent_flags::upload_mode;
    ses->ses->add_torrent(std::move(atp), ec);
    if (ec)
        return set_error(err, BTSHIM_EINTERNAL, "adding the torrent", ec.message().c_str());
    return BTSHIM_OK;
    GUARD_END(err)
}

int btshim_torrent_add_hash(btshim_session_t *ses, const char *hash, const char *name,
                            const char *save_path, const void *resume, size_t resume_len, int flags,
                            btshim_error_t *err)
{
    GUARD_BEGIN
    lt::sha1_hash h;
    if (!ses || !parse_hex(hash, h) || !save_path || !*save_path)
        return set_error(err, BTSHIM_EINVAL, "bad arguments");
    /* without usable resume data: from the hash alone */
    lt::add_torrent_params atp = resume_of(resume, resume_len, h);
    if (ses->ses->find_torrent(h).is_valid())
        return set_error(err, BTSHIM_EEXIST, "the torrent is already in the session");
    atp.info_hashes = lt::info_hash_t(h);
    if (!atp.ti && name && *name)
        atp.name = name;
    atp.save_path = save_path;
    /* no trackers or web seeds from anywhere but the metadata: peers come
     * from the caller */
    atp.trackers.clear();
    atp.url_seeds.clear();
    atp.peers.clear();
    atp.flags &= ~(lt::torrent_flags::auto_managed | lt::torrent_flags::paused |
                   lt::torrent_flags::seed_mode | lt::torrent_flags::upload_mode |
                   lt::torrent_flags::stop_when_ready);
    if (flags & BTSHIM_ADD_PAUSED)
        atp.flags |= lt::torrent_flags::paused;
    lt::error_code ec;
    ses->ses->add_torrent(std::move(atp), ec);
    if (ec)
        return set_error(err, BTSHIM_EINTERNAL, "adding the torrent", ec.message().c_str());
    return BTSHIM_OK;
    GUARD_END(err)
}

int btshim_parse_magnet(const char *uri, char hash[BTSHIM_HASH_HEX], char *name, size_t name_cap,
                        int *v2_only, btshim_error_t *err)
{
    GUARD_BEGIN
    if (v2_only)
        *v2_only = 0;
    if (!uri || !hash || (name_cap && !name))
        return set_error(err, BTSHIM_EINVAL, "bad arguments");
    std::string text = uri;
    if (text.size() > 8192)
        return set_error(err, BTSHIM_EINVAL, "the magnet URI is longer than 8192 bytes");
    if (text.compare(0, 7, "magnet:") != 0) {
        if (text.size() == 64 &&
            text.find_first_not_of("0123456789abcdefABCDEF") == std::string::npos) {
            if (v2_only)
                *v2_only = 1;
            return set_error(err, BTSHIM_EINVAL,
                             "a v2 (SHA-256) info-hash: contacts announce v1 info-hashes (40 hex "
                             "digits); ask for the torrent's v1 hash");
        }
        if (!((text.size() == 40 &&
               text.find_first_not_of("0123456789abcdefABCDEF") == std::string::npos) ||
              (text.size() == 32 &&
               text.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
                                      "abcdefghijklmnopqrstuvwxyz") == std::string::npos)))
            return set_error(err, BTSHIM_EINVAL,
                             "not an info-hash (40 hex digits or 32 base32 letters) or a magnet "
                             "URI");
        text = "magnet:?xt=urn:btih:" + text;
    }
    lt::error_code ec;
    lt::add_torrent_params p = lt::parse_magnet_uri(text, ec);
    if (ec)
        return set_error(err, BTSHIM_EINVAL, "not a usable magnet URI", ec.message().c_str());
    if (!p.info_hashes.has_v1()) {
        if (p.info_hashes.has_v2()) {
            if (v2_only)
                *v2_only = 1;
            return set_error(err, BTSHIM_EINVAL,
                             "the magnet URI names only a v2 (SHA-256) info-hash: contacts "
                             "announce v1 info-hashes");
        }
        return set_error(err, BTSHIM_EINVAL, "the magnet URI names no info-hash (xt=urn:btih:)");
    }
    hex_of(p.info_hashes.v1, hash);
    if (name_cap)
        std::snprintf(name, name_cap, "%s", p.name.c_str());
    return BTSHIM_OK;
    GUARD_END(err)
}

int btshim_torrent_remove_data(btshim_session_t *ses, const char *hash, btshim_error_t *err)
{
    return on_torrent(ses, hash, err, [&](lt::torrent_handle &h) -> int {
        ses->ses->remove_torrent(h, lt::session::delete_files);
        return BTSHIM_OK;
    });
}

int btshim_torrent_pause(btshim_session_t *ses, const char *hash, btshim_error_t *err)
{
    return on_torrent(ses, hash, err, [](lt::torrent_handle &h) -> int {
        h.unset_flags(lt::torrent_flags::auto_managed);
        h.pause(lt::torrent_handle::graceful_pause);
        return BTSHIM_OK;
    });
}

int btshim_torrent_resume(btshim_session_t *ses, const char *hash, btshim_error_t *err)
{
    return on_torrent(ses, hash, err, [](lt::torrent_handle &h) -> int {
        h.unset_flags(lt::torrent_flags::auto_managed);
        h.clear_error();
        h.resume();
        return BTSHIM_OK;
    });
}

int btshim_torrent_peers(btshim_session_t *ses, const char *hash, btshim_peer_t *out,
                         size_t peer_size, size_t max, size_t *n, btshim_error_t *err)
{
    return on_torrent(ses, hash, err, [&](lt::torrent_handle &h) -> int {
        if (!n || (max && (!out || peer_size == 0)))
            return set_error(err, BTSHIM_EINVAL, "bad arguments");
        std::vector<lt::peer_info> v;
        h.get_peer_info(v);
        *n = 0;
        for (const auto &pi : v) {
            if (pi.flags & (lt::peer_info::connecting | lt::peer_info::handshake))
                continue;
            if (*n < max) {
                btshim_peer_t p;
                std::memset(&p, 0, sizeof p);
                copy_text(p.address, sizeof p.address, pi.ip.address().to_string());
                p.port = pi.ip.port();
                p.incoming = (pi.flags & lt::peer_info::outgoing_connection) ? 0 : 1;
                p.seed = (pi.flags & lt::peer_info::seed) ? 1 : 0;
                p.download_rate = pi.payload_down_speed;
                p.upload_rate = pi.payload_up_speed;
                p.downloaded = static_cast<uint64_t>(pi.total_download);
                p.uploaded = static_cast<uint64_t>(pi.total_upload);
                p.progress = pi.progress;
                copy_text(p.client, sizeof p.client, pi.client);
                std::memcpy(reinterpret_cast<char *>(out) + *n * peer_size, &p,
                            peer_size < sizeof p ? peer_size : sizeof p);
            }
            (*n)++;
        }
        return BTSHIM_OK;
    });
}

int btshim_torrent_remove(btshim_session_t *ses, const char *hash, btshim_error_t *err)
{
    return on_torrent(ses, hash, err, [&](lt::torrent_handle &h) -> int {
        ses->ses->remove_torrent(h); /* never with delete_files */
        return BTSHIM_OK;
    });
}

int btshim_torrent_recheck(btshim_session_t *ses, const char *hash, btshim_error_t *err)
{
    return on_torrent(ses, hash, err, [](lt::torrent_handle &h) -> int {
        h.force_recheck();
        return BTSHIM_OK;
    });
}

int btshim_torrent_save_resume(btshim_session_t *ses, const char *hash, btshim_error_t *err)
{
    return on_torrent(ses, hash, err, [](lt::torrent_handle &h) -> int {
        /* with the info dictionary: a download added by hash is loaded
         * from its resume data alone */
        h.save_resume_data(lt::torrent_handle::save_info_dict);
        return BTSHIM_OK;
    });
}

int btshim_torrent_add_peer(btshim_session_t *ses, const char *hash, const char *address,
                            uint16_t port, btshim_error_t *err)
{
    return on_torrent(ses, hash, err, [&](lt::torrent_handle &h) -> int {
        lt::error_code ec;
        lt::address a = lt::make_address(address ? address : "", ec);
        if (ec || !port)
            return set_error(err, BTSHIM_EINVAL, "bad peer address");
        h.connect_peer(lt::tcp::endpoint(a, port));
        return BTSHIM_OK;
    });
}

int btshim_torrent_status(btshim_session_t *ses, const char *hash, btshim_torrent_status_t *st,
                          size_t st_size, btshim_error_t *err)
{
    return on_torrent(ses, hash, err, [&](lt::torrent_handle &h) -> int {
        if (!st || !st_size)
            return set_error(err, BTSHIM_EINVAL, "bad arguments");
        lt::torrent_status ts = h.status();
        btshim_torrent_status_t s;
        std::memset(&s, 0, sizeof s);
        hex_of(ts.info_hashes.v1, s.hash);
        copy_text(s.name, sizeof s.name, ts.name);
        switch (ts.state) {
        case lt::torrent_status::checking_files:
        case lt::torrent_status::checking_resume_data:
            s.state = BTSHIM_STATE_CHECKING;
            break;
        case lt::torrent_status::downloading_metadata:
            s.state = BTSHIM_STATE_METADATA;
            break;
        case lt::torrent_status::downloading:
            s.state = BTSHIM_STATE_DOWNLOADING;
            break;
        default:
            s.state = BTSHIM_STATE_SEEDING;
            break;
        }
        if (ts.errc) {
            s.state = BTSHIM_STATE_ERROR;
            copy_text(s.error, sizeof s.error, ts.errc.message());
        }
        s.size = static_cast<uint64_t>(ts.total_wanted);
        s.done = static_cast<uint64_t>(ts.total_wanted_done);
        s.progress = ts.progress;
        s.download_rate = ts.download_payload_rate;
        s.upload_rate = ts.upload_payload_rate;
        s.uploaded = static_cast<uint64_t>(ts.total_payload_upload);
        s.downloaded = static_cast<uint64_t>(ts.total_payload_download);
        s.peers = ts.num_peers;
        s.paused = (ts.flags & lt::torrent_flags::paused) ? 1 : 0;
        s.has_metadata = ts.has_metadata ? 1 : 0;
        s.need_save = ts.need_save_resume ? 1 : 0;
        s.seeds = ts.num_seeds;
        s.total_downloaded = static_cast<uint64_t>(ts.all_time_download);
        s.total_uploaded = static_cast<uint64_t>(ts.all_time_upload);
        if (!ts.has_metadata)
            s.size = s.done = 0;
        std::memcpy(st, &s, st_size < sizeof s ? st_size : sizeof s);
        return BTSHIM_OK;
    });
}

/* A torrent's alert as an event of `type` about it; false when the torrent
 * is gone from the session (an alert that outlived its removal). */
static bool torrent_event(btshim_event_type_t type, const lt::torrent_alert *r, btshim_event_t &ev)
{
    if (!r->handle.is_valid())
        return false;
    ev = blank_event(type);
    hex_of(r->handle.info_hashes().v1, ev.hash);
    return true;
}

/* An alert as an event; false when it is not one the agent needs. */
static bool convert(lt::alert *a, btshim_event_t &ev)
{
    if (auto *r = lt::alert_cast<lt::save_resume_data_alert>(a)) {
        ev = blank_event(BTSHIM_EV_RESUME_DATA);
        hex_of(r->params.info_hashes.v1, ev.hash);
        return give_data(ev, lt::write_resume_data_buf(r->params));
    }
    if (auto *r = lt::alert_cast<lt::save_resume_data_failed_alert>(a)) {
        if (!torrent_event(BTSHIM_EV_RESUME_FAILED, r, ev))
            return false;
        copy_text(ev.message, sizeof ev.message, r->error.message());
        return true;
    }
    if (auto *r = lt::alert_cast<lt::torrent_checked_alert>(a)) {
        if (!torrent_event(BTSHIM_EV_CHECKED, r, ev))
            return false;
        lt::torrent_status ts = r->handle.status();
        auto ti = r->handle.torrent_file();
        ev.error = ts.errc || (ti && ts.num_pieces < ti->num_pieces());
        return true;
    }
    if (auto *r = lt::alert_cast<lt::torrent_finished_alert>(a))
        return torrent_event(BTSHIM_EV_FINISHED, r, ev);
    if (auto *r = lt::alert_cast<lt::metadata_received_alert>(a))
        return torrent_event(BTSHIM_EV_METADATA, r, ev);
    if (auto *r = lt::alert_cast<lt::torrent_deleted_alert>(a)) {
        ev = blank_event(BTSHIM_EV_DELETED);
        hex_of(r->info_hashes.v1, ev.hash);
        return true;
    }
    if (auto *r = lt::alert_cast<lt::torrent_delete_failed_alert>(a)) {
        ev = blank_event(BTSHIM_EV_DELETE_FAILED);
        hex_of(r->info_hashes.v1, ev.hash);
        copy_text(ev.message, sizeof ev.message, r->error.message());
        return true;
    }
    if (auto *r = lt::alert_cast<lt::file_error_alert>(a)) {
        if (!torrent_event(BTSHIM_EV_TORRENT_ERROR, r, ev))
            return false;
        copy_text(ev.message, sizeof ev.message,
                  std::string(r->filename()) + ": " + r->error.message());
        return true;
    }
    if (auto *r = lt::alert_cast<lt::torrent_error_alert>(a)) {
        if (!torrent_event(BTSHIM_EV_TORRENT_ERROR, r, ev))
            return false;
        copy_text(ev.message, sizeof ev.message, r->error.message());
        return true;
    }
    if (auto *r = lt::alert_cast<lt::listen_succeeded_alert>(a)) {
        if (r->socket_type != lt::socket_type_t::tcp)
            return false;
        ev = blank_event(BTSHIM_EV_LISTEN);
        copy_text(ev.address, sizeof ev.address, r->address.to_string());
        ev.port = static_cast<uint16_t>(r->port);
        return true;
    }
    if (auto *r = lt::alert_cast<lt::listen_failed_alert>(a)) {
        ev = blank_event(BTSHIM_EV_LISTEN_FAILED);
        copy_text(ev.address, sizeof ev.address, r->address.to_string());
        ev.port = static_cast<uint16_t>(r->port);
        copy_text(ev.message, sizeof ev.message, r->error.message());
        return true;
    }
    if (auto *r = lt::alert_cast<lt::portmap_alert>(a)) {
        ev = blank_event(BTSHIM_EV_PORT_MAPPED);
        ev.port = static_cast<uint16_t>(r->external_port);
        return true;
    }
    if (auto *r = lt::alert_cast<lt::portmap_error_alert>(a)) {
        ev = blank_event(BTSHIM_EV_PORT_MAP_FAILED);
        copy_text(ev.message, sizeof ev.message, r->error.message());
        return true;
    }
    if (auto *r = lt::alert_cast<lt::external_ip_alert>(a)) {
        ev = blank_event(BTSHIM_EV_EXTERNAL_IP);
        copy_text(ev.address, sizeof ev.address, r->external_address.to_string());
        return true;
    }
    return false;
}

int btshim_poll(btshim_session_t *ses, btshim_event_t *ev, size_t ev_size, size_t max, size_t *n,
                btshim_error_t *err)
{
    GUARD_BEGIN
    if (!ses || !n || (max && (!ev || ev_size < sizeof(btshim_event_t))))
        return set_error(err, BTSHIM_EINVAL, "bad arguments");
    *n = 0;
    {
        uint64_t v;
        while (read(ses->box->efd, &v, sizeof v) > 0)
            ;
    }
    std::vector<lt::alert *> alerts;
    ses->ses->pop_alerts(&alerts);
    std::lock_guard<std::mutex> lock(ses->box->mu);
    for (lt::alert *a : alerts) {
        /* one alert that cannot be read (its torrent removed meanwhile)
         * must not cost the others */
        btshim_event_t e;
        std::memset(&e, 0, sizeof e);
        try {
            if (convert(a, e))
                ses->box->events.push_back(e);
            else
                btshim_event_clear(&e);
        } catch (...) {
            btshim_event_clear(&e);
        }
    }
    while (*n < max && !ses->box->events.empty()) {
        btshim_event_t *out =
            reinterpret_cast<btshim_event_t *>(reinterpret_cast<char *>(ev) + *n * ev_size);
        *out = ses->box->events.front();
        ses->box->events.pop_front();
        (*n)++;
    }
    if (!ses->box->events.empty())
        ses->box->wake(); /* more to take */
    return BTSHIM_OK;
    GUARD_END(err)
}

void btshim_event_clear(btshim_event_t *ev)
{
    if (!ev)
        return;
    std::free(ev->data);
    ev->data = nullptr;
    ev->data_len = 0;
}

} // extern "C"
